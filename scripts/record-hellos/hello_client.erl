%% A client for scripts/record-hellos.lua: Erlang/OTP's ssl application
%% with its defaults (as MongooseIM's just_tls uses it), after XMPP's
%% STARTTLS or as direct TLS.
%%   escript hello_client.erl HOST PORT TRANSPORT KIND SNI ALPN [handshake [CAFILE]]   (ALPN: - for none)
%% With "handshake" it completes the handshake (verify_none, or verify_peer
%% against CAFILE with the host name SNI) and prints one line for
%% spec/helpers/real_clients.lua:
%%   RESULT ok protocol=tlsv1.3 suite=TLS_AES_128_GCM_SHA256   or   RESULT fail reason=...
%% ssl:connection_information/2 tells neither the group nor the DH size.
-module(hello_client).
-export([main/1]).

main([Host, Port, Transport, Kind, Sni, Alpn]) ->
    run(Host, Port, Transport, Kind, Sni, Alpn, false, [{verify, verify_none}]);
main([Host, Port, Transport, Kind, Sni, Alpn, "handshake"]) ->
    run(Host, Port, Transport, Kind, Sni, Alpn, true, [{verify, verify_none}]);
main([Host, Port, Transport, Kind, Sni, Alpn, "handshake", CaFile]) ->
    run(Host, Port, Transport, Kind, Sni, Alpn, true, [{verify, verify_peer}, {cacertfile, CaFile}]).

run(Host, Port, Transport, Kind, Sni, Alpn, Handshake, Verify) ->
    ok = ssl:start(),
    case gen_tcp:connect(Host, list_to_integer(Port), [binary, {active, false}], 10000) of
        {ok, S} ->
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
            Opts = Verify ++ [{server_name_indication, Sni}]
                ++ case Alpn of "-" -> []; _ -> [{alpn_advertised_protocols, [list_to_binary(Alpn)]}] end,
            Result = ssl:connect(S, Opts, 10000),
            case Handshake of
                false -> io:format("~p~n", [Result]);
                true -> report(Result)
            end;
        Error ->
            case Handshake of
                false -> io:format("~p~n", [Error]);
                true -> report(Error)
            end
    end.

report({ok, Tls}) ->
    {ok, [{protocol, Protocol}, {selected_cipher_suite, Suite}]} =
        ssl:connection_information(Tls, [protocol, selected_cipher_suite]),
    io:format("RESULT ok protocol=~s suite=~s~n", [Protocol, ssl:suite_to_str(Suite)]),
    ssl:close(Tls);
report({error, Reason}) ->
    io:format("RESULT fail reason=~s~n", [string:join(string:lexemes(lists:flatten(io_lib:format("~0p", [Reason])), " \n\t"), " ")]).

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
