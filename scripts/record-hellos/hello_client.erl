%% A client for scripts/record-hellos.lua: Erlang/OTP's ssl application
%% with its defaults (as MongooseIM's just_tls uses it), after XMPP's
%% STARTTLS or as direct TLS.
%%   escript hello_client.erl HOST PORT TRANSPORT KIND SNI ALPN   (ALPN: - for none)
-module(hello_client).
-export([main/1]).

main([Host, Port, Transport, Kind, Sni, Alpn]) ->
    ok = ssl:start(),
    {ok, S} = gen_tcp:connect(Host, list_to_integer(Port), [binary, {active, false}], 10000),
    case Transport of
        "starttls" ->
            Ns = case Kind of "c2s" -> "jabber:client"; _ -> "jabber:server" end,
            ok = gen_tcp:send(S, ["<?xml version='1.0'?><stream:stream xmlns='", Ns,
                                  "' xmlns:stream='http://etherx.jabber.org/streams' to='", Sni,
                                  "' version='1.0'>"]),
            read_until(S, <<"</stream:features>">>, <<>>),
            ok = gen_tcp:send(S, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"),
            read_until(S, <<"<proceed">>, <<>>);
        _ -> ok
    end,
    Opts = [{verify, verify_none}, {server_name_indication, Sni}]
        ++ case Alpn of "-" -> []; _ -> [{alpn_advertised_protocols, [list_to_binary(Alpn)]}] end,
    io:format("~p~n", [ssl:connect(S, Opts, 10000)]).

%% Read one byte at a time until the bytes read hold Mark and end a tag.
read_until(S, Mark, Buf) ->
    case binary:match(Buf, Mark) =/= nomatch andalso binary:last(Buf) =:= $> of
        true -> ok;
        false ->
            case gen_tcp:recv(S, 1, 10000) of
                {ok, B} -> read_until(S, Mark, <<Buf/binary, B/binary>>);
                _ -> ok
            end
    end.
